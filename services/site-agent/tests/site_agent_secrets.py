"""Secrets planted in log files: none of them may ever be published."""
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7secretkeybody"
PLANTED = [
    "2026-11-29 08:00:00,000 - Loader - INFO - loading key",
    "-----BEGIN PRIVATE KEY-----",
    KEY_BODY,
    "-----END PRIVATE KEY-----",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlc2VjcmV0",
    ("bus=Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;"
     "SharedAccessKey=abc123XYZsecretKEY+/="),
    ("storage DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyc2VjcmV0a2V5==;"
     "EndpointSuffix=core.windows.net"),
    "url https://acct.blob.core.windows.net/c/f?sv=2022-11-02&sr=b&sig=AbCdEfSasSignature%3D",
    "contact dr.jane.doe@hospital-north.org about patient MRN-123456",
]
SECRETS = [KEY_BODY, "eyJzdWIiOiJhZG1pbiJ9", "abc123XYZsecretKEY", "Zm9vYmFyc2VjcmV0a2V5",
           "AbCdEfSasSignature", "jane.doe", "hospital-north.org", "MRN-123456"]

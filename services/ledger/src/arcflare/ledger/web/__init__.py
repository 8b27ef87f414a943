"""The ledger over HTTP: the JSON read API and the operator console."""

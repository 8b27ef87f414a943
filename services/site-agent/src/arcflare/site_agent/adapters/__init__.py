"""Site observer adapters: local processes and Kubernetes pods."""

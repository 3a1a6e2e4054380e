"""The desk's platform: settings, site policy, secrets in the OS keyring, logging."""

"""The team lead's review window (``consentdesk review``): see :mod:`.window`."""

"""The Qt sidebar: everything that builds UI lives here (core stays Qt-free)."""

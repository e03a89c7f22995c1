"""The built-in agents, each a plugin module registered through the public hook."""

"""refservers: reference network servers for local testing."""

"""Reports of a session: terminal table, pull-request markdown, JSON, and the files they go to."""

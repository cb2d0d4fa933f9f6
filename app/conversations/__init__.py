"""Running flows for patients: their context, starting and resuming conversations, applying engine events."""

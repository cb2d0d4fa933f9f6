"""Channel adapters: SMS and voice over Twilio, and the console channel for the embedded demo."""

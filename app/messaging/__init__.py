"""Messages in and out: inbound (store first, then process), outbound intents and delivery, status, consent keywords."""

"""Collection automation: pull connectors, publish/subscribe (e-mail and
signed webhooks), reminders."""

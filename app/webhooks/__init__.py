"""Webhooks: signed, ordered, at-least-once pushes of the event log to subscribed URLs.

- `verify.py`: the signature scheme and the receivers' check (stdlib only, copy it freely).
- `model.py`: subscriptions, their filters, and which deliveries an event makes.
- `registry.py`: every store command of the subscriptions (keys under `{wh}`).
- `deliverer.py`: the one deliverer of the deployment (a lease in the store).
"""

"""Delivery of built messages, in layers that read top-down.

- ``_policy``: what one attempt's outcome means (retry, wait, give up); pure, no I/O.
- ``_attempts``: one message's attempts through a transport, as the policy says.
- ``_ledger``: tickets, counters and ``flush()``'s waits.
- ``_callbacks``: the user's callbacks and the log.
- ``_concurrency``: how many requests may be in flight, and pauses on push-back.
- ``_engines``: the simple engines (synchronous, dry run) and what every engine offers.
- ``_threaded``: the queue and the sender threads.
- ``_process``: forks and the interpreter's exit.

Nothing here imports a transport implementation: engines receive one.
"""

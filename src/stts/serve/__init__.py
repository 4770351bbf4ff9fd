"""``stts serve``: checkpoints behind a web page and an HTTP API, with windows of concurrent requests batched.

``pipeline`` is the only module that knows the prediction code; ``batcher`` groups windows
into forward passes; ``limits`` and ``settings`` bound the server; ``app`` is the ASGI app
and ``server`` runs it. Needs ``pip install 'stts[serve]'``.
"""

"""vadusa: fast auto-regressive text-to-speech by speculative decoding (VADUSA), as a pipeline.

The package follows the data: ``data`` (corpora, manifests, text front end) -> ``tokenizers``
-> ``model`` -> ``training`` -> ``decoding`` -> ``eval`` -> ``sweep``; ``tracking`` logs every
stage; ``config`` holds every default; ``cli`` is the one entry point the workflow calls.
"""

__version__ = "0.1.0"

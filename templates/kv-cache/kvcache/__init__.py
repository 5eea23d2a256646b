"""kv-cache: an in-memory LRU key-value cache with TTL, served over HTTP.

Python 3 standard library only.
"""

__version__ = "0.1.0"

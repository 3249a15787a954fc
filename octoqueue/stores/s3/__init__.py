"""The S3 store (``s3://bucket/prefix``): jobs as objects, changes as conditional writes. Needs ``octoqueue[s3]``."""

from octoqueue.stores.s3.store import S3Store, s3_url

__all__ = ["S3Store", "s3_url"]

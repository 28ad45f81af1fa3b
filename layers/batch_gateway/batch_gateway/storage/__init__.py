"""Storage: every S3 key, object access and DynamoDB row of the gateway.

- :mod:`.keys`: the S3 key layout (staging/ and results/ of each job);
- :mod:`.s3`: streamed reads, uploads, JSON documents, prefix deletes;
- :mod:`.jobs`: the jobs table (job rows and chunk rows);
- :mod:`.chunk_row`: the :class:`~.chunk_row.ChunkRow` model every reader of chunk rows uses;
- :mod:`.dynamo`: DynamoDB value conversions and the paginated query the tables share;
- :mod:`.results`: the results table and the keyed result lines staged in S3;
- :mod:`.claims`: bookkeeping rows of the scheduler and the reconciler;
- :mod:`.chunk_index`: the index line of each staged request;
- :mod:`.aws`: the shared boto3 clients.

Callers import from the module that holds a name (``from batch_gateway.storage.s3 import
open_object``): this file imports nothing, so no import of one of them drags in the rest.
"""

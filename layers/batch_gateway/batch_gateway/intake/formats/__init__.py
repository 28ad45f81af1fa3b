"""Input files in the providers' own batch formats, and CSV tables: each line becomes our request.

A file is read in one format (``detect``: forced by the job spec's ``format``, else a template means
CSV, else the first non-blank line's keys decide): our BatchItem lines (``items``, the default and
the fast path, untouched here), OpenAI Batch lines (``openai``), Anthropic Message Batches requests
(``anthropic``), Bedrock batch records in the Claude messages shape (``bedrock``), or a CSV table
rendered through a prompt template (``csv_rows``).

A provider line runs on any provider (``translate``): on its own provider family it is sent as it
is (only the id, and where needed the model, change); across families the request is translated
(``openai`` converts between the OpenAI chat body and the Anthropic Messages params, the neutral
shape here). What has no equivalent on the target raises :class:`common.UntranslatableError`, which
intake turns into a line error naming the field and the provider.
"""

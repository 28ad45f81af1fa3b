"""The emulated OpenAI Files + Batches API (chat completions endpoint).

api (the routes the server dispatches to), files (the Files endpoints), batches (the Batches
endpoints), lifecycle (each batch moved on by its retrieves), validation (an input file checked as
OpenAI checks it), completions (one request line's answer), replies (constants and the shapes of
error and list answers).
"""

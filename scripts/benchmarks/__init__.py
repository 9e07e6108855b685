"""`make bench`, in parts: measuring writes a plain JSON record, rendering reads it.

`measure` runs every benchmark against the Store emulator and returns the record
(`record` says its shape); `render` turns a record into docs/benchmarks.md. The
processes measured side by side for time-to-halt are in `arms/`.
"""

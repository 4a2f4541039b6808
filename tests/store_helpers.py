"""What the sweep tests compare stores by."""

import json
from pathlib import Path


def tree(path):
    """Every file of a store, relative path -> bytes; the root attribute ``created`` (a time
    stamp, the one thing two runs of the same sweep write differently) is left out."""
    root = Path(path)
    files = {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*"))
             if f.is_file()}
    meta = json.loads(files["zarr.json"])
    assert meta["attributes"].pop("created")
    files["zarr.json"] = json.dumps(meta, sort_keys=True).encode()
    return files

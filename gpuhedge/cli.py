"""Command line: ``gpuhedge info`` prints the device, CUDA and library versions."""

import argparse
import importlib.metadata
import os
import sys

from . import __version__, backend


def _info():
    print(f"gpuhedge {__version__}")
    print(f"python {sys.version.split()[0]}")
    for pkg in ("numpy", "numba", "numba-cuda", "cupy-cuda13x", "cupy-cuda12x", "xarray",
                "zarr", "dask"):
        try:
            print(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    device = backend.resolve("auto")
    print(f"device (auto): {device}: {backend.device_name(device)}")
    print(f"GPUHEDGE_DEVICE={os.environ.get('GPUHEDGE_DEVICE', '')}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="gpuhedge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="device, CUDA and library versions")
    args = parser.parse_args(argv)
    if args.command == "info":
        _info()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

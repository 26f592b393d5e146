"""Command-line interface (``spikemllm --help``)."""

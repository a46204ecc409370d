"""The ``gainsight-segment`` command line."""

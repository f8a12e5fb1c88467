"""The command line: options and their sources, locustfile loading, and the run modes."""

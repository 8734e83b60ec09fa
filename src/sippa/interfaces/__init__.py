"""L4: command line, web pages and REST API. They talk only to sippa.app."""

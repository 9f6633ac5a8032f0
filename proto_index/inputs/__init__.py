"""Reading the text files a user names: CSV manifests and path tables, labels files, one set of checks."""

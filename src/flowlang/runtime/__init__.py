"""The runtime: values, scopes, builtins, jobs, state and the error store."""

"""The deployment's student groups as data: codes, names, the state files' labels, accountability's default."""

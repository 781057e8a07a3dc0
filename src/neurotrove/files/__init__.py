"""The file repository: safe paths under the data root, hashing, atomic writes, register."""

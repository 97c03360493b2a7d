"""The Ed-Fi-compatible API for SIS clients, and the OAuth2 client credentials they authenticate with."""

"""Webhook endpoints: a member's own, or the zone's, each with a secret that signs every delivery."""

"""Domain values to and from the API's generated messages, for both sides of the wire (the
servicers and the client)."""

/// Ratchet's version, shown by `ratchet --version` and by `ratchet mcp` to its client.
public let ratchetVersion = "0.1.0"

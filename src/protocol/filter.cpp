// implemented by the protocol work

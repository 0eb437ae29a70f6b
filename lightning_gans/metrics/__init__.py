"""What is measured: the theory's divergences and exact W1, FID/KID and their feature networks."""

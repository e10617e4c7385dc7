"""sagd_core: band specs, the SAGD forward process, U-Net, training, samplers, restoration."""

"""The evaluation harness: the paper's experiment (soundscapes, k-fold accuracy, tau rules), calibration and the modality gap."""

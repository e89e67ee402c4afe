"""Training: Algorithm 1 of the DDPM paper and the noise-aware classifier (loop), what is
trained (networks), its options (config, torch-free, so the command line offers them without
importing torch), its data, checkpoints and output folder, and the evaluation of a model
(class accuracy and Frechet distance in a classifier's features)."""

"""The algorithms: learners, the inner step, PPMO's meta-loss and update, the PPO pieces they share, the
dataset format, and the two methods built from them (plain PPO, ``compress``) with their settings."""

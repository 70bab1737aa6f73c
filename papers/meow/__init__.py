"""MEOW and AdaMEOW (Yu et al., SDM 2023 / TKDE 2024): heterogeneous graph contrastive learning
with meta-path contexts and (adaptively) weighted negative samples."""

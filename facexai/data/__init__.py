"""Data stage: synthetic faces in the CelebAMask-HQ layout, the layout reader, mask fusion, splits."""

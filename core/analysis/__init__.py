"""Analysis of what a learner has learned: embeddings, 2-D projections, distance matrices, exports."""

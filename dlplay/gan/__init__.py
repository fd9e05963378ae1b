"""The GAN task: the contest on the kernel, the 2-D lab, the MNIST GAN, its grading and images."""

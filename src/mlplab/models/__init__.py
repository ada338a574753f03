"""The networks the lab trains, one file each: the lesson's §2.2 names fully connected, convolutional and recurrent
networks (mlp.py, cnn.py, rnn.py). network.py says what the rest of the lab asks of a network."""

"""``bybit-mock soak``: run the mock with a fault schedule under load for a while, and report what
its processes did (memory, descriptors, loop lag) and which errors the schedule does not explain.

* :mod:`.sampler`: reading a process's RSS and descriptors, probing a loop's lag;
* :mod:`.report`: the figures (growth after warm-up, lag percentiles, errors split);
* :mod:`.plot`: the PNG (matplotlib, imported only here);
* :mod:`.runner`: the run itself.
"""

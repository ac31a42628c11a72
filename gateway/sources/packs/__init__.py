"""Commercial packs as battery sources: BMSes that speak their own protocol (JBD, JK, Daly over
a serial port, Pylontech LV CAN), each read into one PackReading (reading.py)."""

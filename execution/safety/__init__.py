"""Safety at send time: the fat-finger guards and their trips, protective exits between decision runs."""

"""dlsuite.data"""

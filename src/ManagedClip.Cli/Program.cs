// The managedclip command line; commands are added by the product work.
return 0;

// managedclip: BiomedCLIP from the command line. See CliApp for the commands.
return ManagedClip.Cli.CliApp.Run(args, Console.Out, Console.Error);

namespace ManagedClip.Tests;

public class SmokeTests
{
    [Fact]
    public void SharedReferenceIsReachable() => Assert.True(File.Exists(SharedData.PathOf("README.md")));
}
